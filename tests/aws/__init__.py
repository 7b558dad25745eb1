"""Package marker: keeps test module names unique across tests/ folders."""
