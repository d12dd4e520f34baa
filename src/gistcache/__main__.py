from gistcache.cli import main

raise SystemExit(main())
