"""The registered studies: importing this package registers each of them.

Add a study by writing a module here and importing it below.
"""

# (studies are imported here as they are added)
