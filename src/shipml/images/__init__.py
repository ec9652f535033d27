"""Images: reading photos from files, folders, zips and tables of paths.

- decode.py: one cell to an RGB Pillow image (`load_image`, `load_sized`) or its size
  (`image_size`); `IMAGE_SUFFIXES`, `MAX_PIXELS`.
- sources.py: a folder or zip of class folders (`read_image_folder`), images to score
  (`read_image_inputs`), both as an `ImageTable`; a table's column of paths
  (`resolve_image_paths`, `looks_like_image_paths`). listing.py: what a folder or zip holds.
- stats.py: width, height, brightness, contrast, saturation per image (`image_stats`), for
  drift monitoring and reports.

An image cell in a typed frame (Schema.coerce) is a ``str`` (a file path) or ``bytes`` (the
file's content, e.g. a server upload); missing is None. The encoder (shipml.encoders.image)
turns cells into embeddings, as a sentence encoder turns texts into vectors.
"""
