"""hil.wire: wire profiles — a team's upload and OTA format as data plus named codecs.

:mod:`hil.wire.profile` loads a profile (``--hil-wire-profile``); :mod:`hil.wire.classifier` maps a
server's replies to :class:`hil.wire.outcome.Outcome`; :mod:`hil.wire.codec` names the codec
functions; :mod:`hil.wire.replies` renders what the reference server answers in a profile.
"""
