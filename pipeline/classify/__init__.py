"""One chunk to labels: fetch each image, decode it, run the LiteRT model, write the parts, count.

Imports split/ (the chunk message) and the layers below; never replay/, its sibling.
"""
