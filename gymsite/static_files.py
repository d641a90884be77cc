"""WhiteNoise for an ASGI server: static files streamed without Django's sync-iterator fallback.

WhiteNoise answers a FileResponse, whose file is a sync iterator; Django's ASGI handler then warns
("StreamingHttpResponse must consume synchronous iterators") on every static file and reads it in
a fallback path. This reads it in a worker thread as Django's own ASGIStaticFilesHandler does.
"""

from asgiref.sync import sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware as SyncWhiteNoiseMiddleware


class WhiteNoiseMiddleware(SyncWhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file, request):
        response = SyncWhiteNoiseMiddleware.serve(static_file, request)
        if response.streaming and not response.is_async:
            chunks = response.streaming_content

            def read_all() -> list[bytes]:
                return list(chunks)

            async def read():
                for part in await sync_to_async(read_all, thread_sensitive=False)():
                    yield part

            response.streaming_content = read()  # the file stays among the response's closers
        return response
