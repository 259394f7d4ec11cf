"""The AFNOR XP Z12-013 Flow Service API (v1.3.0), served as a channel of the gateway."""
