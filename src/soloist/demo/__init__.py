"""The demo: the real servers a freelancer's workspace talks to, run on ``127.0.0.1``.

:mod:`soloist.demo.servers` starts and stops them (:class:`~soloist.demo.servers.LocalServers`)
and counts what they hold; their packages come with the ``demo`` extra
(``pip install 'soloist[demo]'``) and are imported only when a server starts.
"""
