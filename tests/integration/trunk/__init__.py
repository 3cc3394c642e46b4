"""SIP trunks against a real provider (conftest.py: the rig the files share)."""
