"""Tape jobs: labelling, backup of a datastore to a media pool, restore of a media set."""
