"""Manifests in every format: sniffing, sources, lines and array elements, parsing, fast paths.

Bytes (local or S3, plain or gzip) become `ManifestRecord`s or line failures in constant memory;
`reader.ManifestReader` is the public face. Imports gzip/ and the layers below it.
"""
