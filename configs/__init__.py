"""Small preset files built with ``dataclasses.replace`` on the package defaults."""
