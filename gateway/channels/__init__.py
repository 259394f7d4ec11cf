"""How files arrive: folders, the SFTP server, the SFTP poller."""
