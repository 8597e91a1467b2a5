from ctibridge.cli import main

raise SystemExit(main())
