"""The demo's "use it" step: the trained judge through the three ways users call it."""

from __future__ import annotations

from typing import Any

__all__ = ["grade_examples"]


async def grade_examples(base_url: str, model_name: str, api_url: str, test_file: str,
                         n_batch: int = 8) -> dict[str, Any]:
    """``await grader.aevaluate``, a ``GradingRunner`` batch and an HTTP request; prints each."""
    import httpx

    from judgeforge.data.io import load_records
    from judgeforge.graders import get_grader
    from judgeforge.graders.runner import GraderConfig, GradingRunner
    from judgeforge.models.openai_chat import OpenAIChatModel

    loaded = load_records(test_file)
    dim, scale = next(iter(loaded.info.dimensions.items()))
    rows = [{"query": r.query, "response": r.response,
             "rubric": (r.extra_info or {}).get("rubric"), "label": r.label[dim]}
            for r in loaded.records[:n_batch]]
    model = OpenAIChatModel(model=model_name, base_url=base_url, server_kind="vllm")
    grader = get_grader(dim, model, scale=scale)
    shown: dict[str, Any] = {}

    first = rows[0]
    result = await grader.aevaluate(query=first["query"], response=first["response"],
                                    rubric=first["rubric"])
    print(f"\nawait grader.aevaluate(...) -> score={getattr(result, 'score', None)} "
          f"(human label {first['label']}); reason: {getattr(result, 'reason', '')[:120]!r}")
    shown["aevaluate"] = {"score": getattr(result, "score", None), "label": first["label"],
                          "error": getattr(result, "error", None)}

    runner = GradingRunner(
        grader_configs={dim: GraderConfig(grader=grader, mapper={
            "query": "query", "response": "response", "rubric": "rubric"})},
        max_concurrency=8, show_progress=True)
    results = await runner.arun(rows)
    scores = [getattr(r, "score", None) for r in results[dim]]
    print(f"GradingRunner over {len(rows)} rows -> scores {scores}")
    print(f"                          human labels {[r['label'] for r in rows]}")
    shown["runner"] = {"scores": scores, "labels": [r["label"] for r in rows]}

    async with httpx.AsyncClient(timeout=120) as client:
        body = {"query": first["query"], "response": first["response"],
                "rubric": first["rubric"], "dimension": dim}
        reply = await client.post(f"{api_url}/v1/score", json=body)
    print(f"POST {api_url}/v1/score -> HTTP {reply.status_code}: "
          f"{ {k: reply.json().get(k) for k in ('score', 'parse_status', 'latency_s')} }")
    shown["http"] = {"status": reply.status_code, "body": reply.json()}
    await model.aclose()
    return shown
