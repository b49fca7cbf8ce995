"""Document pipeline: extract, chunk, embed, store: the shape of every RAG ingestion job.

Each stage is a step, so a failure in embedding (the usual rate limit) retries that stage only:
the text is not extracted again. ``retries=2`` bounds the attempts; ``concurrency=5`` keeps a
bulk upload within the embedding model's limits.
"""

from __future__ import annotations

from stepline import Context, EventData

from examples.client import client
from examples.services import services

CHUNK_WORDS = 40


class DocumentUploaded(EventData, name="docs/document.uploaded"):
    document_id: str


def chunk_text(text: str, words_per_chunk: int = CHUNK_WORDS) -> list[str]:
    words = text.split()
    return [" ".join(words[i:i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]


@client.function("process-document", trigger=DocumentUploaded, retries=2, concurrency=5)
def process_document(ctx: Context[DocumentUploaded]) -> dict:
    document_id = ctx.event.data.document_id
    text = ctx.step.run("extract", services.extract_text, document_id)
    chunks = ctx.step.run("chunk", chunk_text, text)
    vectors = ctx.step.run("embed", services.embed, document_id, chunks)
    stored = ctx.step.run("store", services.store_vectors, document_id, chunks, vectors)
    return {"document_id": document_id, "chunks": len(chunks), "stored": stored}
