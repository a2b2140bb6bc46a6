from mmre_demo.cli import main

raise SystemExit(main())
