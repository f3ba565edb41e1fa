"""Alpine (apk v2) formats: versions, APKINDEX, .apk packages, the installed database.

Everything here is pure data handling: no network, no resolver. The readers
verify before they parse, so nothing downstream ever sees unverified bytes.
"""
