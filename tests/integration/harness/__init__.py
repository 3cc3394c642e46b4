"""Helpers for the ha-pbx integration tests: the PBX process, real SIP peers
(sipp, baresip, linphonec), a small SIP client, RTP and audio analysis."""
