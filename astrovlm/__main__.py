import sys

from astrovlm.cli import main

sys.exit(main())
