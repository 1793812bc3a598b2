"""`python -m liv` is the `liv` command (torchrun uses this form)."""

from liv.cli import main

raise SystemExit(main())
