from tsglab.cli import main

raise SystemExit(main())
