"""Japanese texts of the operator app, by their English source text (``t("...")`` in the code).

After editing, run ``python -m gui.i18n.build`` to regenerate genba_ja.ts and genba_ja.qm.
Placeholders in braces stay as they are.
"""

from __future__ import annotations

JA: dict[str, str] = {
    # window and tabs
    "Genba operator": "Genba オペレーター",
    "Inspect": "判定",
    "Review queue": "確認キュー",
    "Model": "モデル",
    "Federation": "連合学習",
    "KPIs": "KPI",
    "Connecting to the agent…": "エージェントに接続しています…",
    "Problem: {message}": "問題: {message}",
    "Site {site} · signed in as {role} · production {name} v{version}": (
        "拠点 {site} · {role} としてサインイン · 本番 {name} v{version}"
    ),
    "Signed in as {role}: this role may only ask for predictions.": (
        "{role} としてサインイン: このロールは予測の依頼のみ可能です。"
    ),
    "candidate v{version} in {stage}": "候補 v{version}（{stage}）",
    # stages
    "production": "本番",
    "pilot": "パイロット",
    "shadow": "シャドー",
    # inspect
    "Type, paste or scan a report, then press Enter": "報告を入力・貼り付け・スキャンして Enter",
    "Predict": "予測",
    "Choose image…": "画像を選択…",
    "Why? (F1)": "理由 (F1)",
    "Working out why…": "理由を計算しています…",
    "No answer yet": "まだ回答はありません",
    "{pct} % confident": "確信度 {pct} %",
    "Model {model} · stage {stage} · {provider} · {ms} ms": (
        "モデル {model} · 段階 {stage} · {provider} · {ms} ms"
    ),
    "Pilot suggestion (not the answer): {label}, {pct} %": (
        "パイロットの提案（回答ではありません）: {label}, {pct} %"
    ),
    "Accept": "承認",
    "Saved: {label} ({kind})": "保存しました: {label}（{kind}）",
    "accepted": "承認",
    "correction": "修正",
    "This role may not label; sign in as an operator to accept or correct.": (
        "このロールはラベル付けできません。承認・修正にはオペレーターとしてサインインしてください。"
    ),
    "orange: for the answer · blue: against it": "オレンジ: 回答を支持 · 青: 回答に反対",
}
