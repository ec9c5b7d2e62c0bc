from textfit.cli import main

raise SystemExit(main())
