"""`python -m crmrules`: the command line."""

from crmrules.cli import main

main()
