"""The gateway's own SFTP server."""
