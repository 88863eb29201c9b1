"""NTU RGB+D 60: file names, the ``.skeleton`` format, splits and the one-off preparation step."""
