"""`python -m aiops_agent` is `aiops-agent`."""

import sys

from aiops_agent.cli.main import main

sys.exit(main())
