"""User feedback kept on this machine: run history, star ratings, A/B choices and blind surveys.

:mod:`~impasto.feedback.store` is the SQLite store (standard library only, no torch);
:mod:`~impasto.feedback.fingerprint` what it keeps instead of images; :mod:`~impasto.feedback.survey`
renders, asks and reports surveys through the stylization contract; :mod:`~impasto.feedback.stats` the
Wilson and Bradley-Terry statistics; :mod:`~impasto.feedback.page` the survey report's HTML.
"""
