"""The OpenSIPS 1.6 routing-script language: grammar, parser, compiler."""
