"""The budget one file may cost a reader, checked from headers and metadata before decoding.

Every limit here is far beyond what astrovlm needs from one file (a cutout, one spectrum, a
catalog of a survey field) and far below what would take the machine down: a reader refuses
a file over budget with an ``UnreadableError`` that names the file and the limit.
"""

# Pixels of one image (a 7000 x 7000 frame); PIL's decompression-bomb guard is set to it too.
MAX_PIXELS = 50_000_000
MAX_SIDE = 16384
# Bytes of decoded data in one file: FITS data as its headers declare it, a gzipped file's
# uncompressed size, tile-compressed images once decompressed.
MAX_BYTES = 512 * 2**20
# Rows of one catalog or table (Parquet's from its metadata, FITS's from NAXIS2).
MAX_ROWS = 10_000_000
# Columns of one table; FITS allows 999.
MAX_COLUMNS = 999
# Text formats (CSV, ECSV, VOTable, text spectra) are parsed in Python at ~10x their size.
MAX_TEXT_TABLE_BYTES = 200 * 2**20
# A FITS header longer than this many 2880-byte blocks (100,000 cards) is not a header.
MAX_HEADER_BLOCKS = 1250
