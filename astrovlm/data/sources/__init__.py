"""The real sources the sample sky is built from, one module per source.

- ``debian``: fetches and unpacks Debian data packages without a system install
  (``apt-get download`` + ``dpkg -x`` into ``$ASTROVLM_HOME/cache/debian``).
- ``stellarium``: deep-sky images of ``stellarium-data`` with their sky corners and credits,
  and the sky-culture descriptions.
- ``openngc``: the OpenNGC catalog (NGC/IC and addenda) shipped in ``pyongc``'s SQLite file.
- ``rvsao``: the real spectra among the RVSAO cross-correlation templates (``iraf-rvsao``).
- ``kstars``: stars, supernovae, planet facts and the AstroInfo articles of ``kstars-data``.
- ``literature``: the text corpus, chunked into passages.

Every reader keeps each item's credit and licence, so the manifest can list them.
"""
