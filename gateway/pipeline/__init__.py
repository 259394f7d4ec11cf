"""From a file's bytes to one verdict per piece: detection, lots, PDFs, signatures, attachments, the stages in order."""

import warnings

# pyHanko (0.38) imports cryptography's DSA key type, which cryptography
# deprecates with a warning printed on every command that reads a PDF
# signature. The gateway never uses DSA; only that one warning is silenced,
# from that one module, for the main process and the workers alike.
warnings.filterwarnings("ignore", message=r"DSA is deprecated", module=r"pyhanko\.sign\.signers\.pdf_cms")
