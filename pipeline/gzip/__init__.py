"""Resumable gzip reading: members, zran seek-point checkpoints, their S3 store, ranged S3 reads.

What lets a manifest of any size be read in passes that each start where the last stopped.
Imports only aws/, observe/, config and failures; knows nothing of manifest formats.
"""
