"""Resumable Split passes: manifest records → deterministic chunks → the WorkQueue.

Also the chunk message itself (`chunking.Chunk`, `work_message`), which classify/ consumes and
replay/ produces. Imports ledger/, parts/, manifest/, gzip/ and the layers below.
"""
