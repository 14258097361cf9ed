"""The static files storage of every site in production (DEBUG off)."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed, hashed copies, with the import statements of ES modules
    rewritten to the hashed names too (Django's option, off by default): a module that
    imports ``./socket.js`` by its path then gets the copy its page's hash names, not the
    unhashed one a browser may keep from an older deploy."""

    support_js_module_import_aggregation = True
