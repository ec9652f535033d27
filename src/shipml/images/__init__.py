"""Images: reading photos from files, folders, zips and tables of paths (decode.py, sources.py).

An image cell in a typed frame (Schema.coerce) is a ``str`` (a file path) or ``bytes`` (the
file's content, e.g. a server upload); missing is None. The encoder (shipml.encoders.image)
turns cells into embeddings, as a sentence encoder turns texts into vectors.
"""
