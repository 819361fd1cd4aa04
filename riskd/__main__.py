from riskd.cli import main

raise SystemExit(main())
