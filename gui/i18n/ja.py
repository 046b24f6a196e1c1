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
    "Random check: label what you see, whatever the model says": (
        "抜き取り確認: モデルの答えに関わらず、見たとおりにラベルを付けてください"
    ),
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
    # review queue
    "Skip (S)": "スキップ (S)",
    "Load the queue again (R)": "キューを再読み込み (R)",
    "Loading the queue…": "キューを読み込んでいます…",
    "Nothing to label: the queue is empty.": "ラベル付けするものはありません: キューは空です。",
    "Loading the image…": "画像を読み込んでいます…",
    "The image could not be shown: {problem}": "画像を表示できません: {problem}",
    "The image could not be shown: not a picture this app can read": (
        "画像を表示できません: このアプリで読めない形式です"
    ),
    "The model gave no answer": "モデルは回答しませんでした",
    "{done} of {total} labelled": "{total} 件中 {done} 件ラベル付け済み",
    "Queue done: {done} labelled, {skipped} skipped. Press R to load more.": (
        "キュー完了: {done} 件ラベル付け、{skipped} 件スキップ。R で続きを読み込みます。"
    ),
    "{count} skipped": "{count} 件スキップ",
    "Model: {label}": "モデル: {label}",
    # KPIs
    "Lead time to production (median)": "本番までのリードタイム（中央値）",
    "Accepted without correction": "修正なしで承認",
    "Accuracy on operator labels": "オペレーターのラベルに対する精度",
    "Net cost–benefit": "正味の費用対効果",
    "Accuracy, acceptance and agreement per day": "日ごとの精度・承認率・一致率",
    "Latency of production answers per day": "日ごとの本番回答のレイテンシ",
    "Labels per day": "1 日あたりのラベル数",
    "Seconds per label": "1 ラベルあたりの秒数",
    "Drift events per day": "日ごとのドリフト発生",
    "Too few labels or compared answers on every day": "どの日もラベルまたは比較回答が不足しています",
    "Too few production answers on every day": "どの日も本番回答が不足しています",
    "Too few timed labels on every day": "どの日も時間計測付きラベルが不足しています",
    "accuracy": "精度",
    "acceptance": "承認率",
    "agreement": "一致率",
    "labels": "ラベル",
    "mean": "平均",
    "median": "中央値",
    "warning": "警告",
    "drift": "ドリフト",
    "Window:": "期間:",
    "Export CSV…": "CSV に書き出す…",
    "Loading the report…": "レポートを読み込んでいます…",
    "This role may not read the KPIs.": "このロールは KPI を閲覧できません。",
    "Saved {path}": "{path} に保存しました",
    "Last {days} days": "直近 {days} 日",
    "Report of {first} to {last} (UTC), made {at}": "{first} から {last} までのレポート（UTC）、作成 {at}",
    "Could not save {path}: {error}": "{path} を保存できませんでした: {error}",
    # model
    "exported by IT": "IT がエクスポート",
    "trained at a site": "拠点で学習",
    "federated training": "連合学習",
    "rollback by IT": "IT によるロールバック",
    "Answers in this stage": "この段階での回答数",
    "Agreement with production": "本番との一致率",
    "Accuracy change (points)": "精度の変化（ポイント）",
    "Worst group change (points)": "最も悪いグループの変化（ポイント）",
    "Latency p95 (ms)": "レイテンシ p95 (ms)",
    "yes": "はい",
    "no": "いいえ",
    "Accuracy by group (held-out labels)": "グループ別の精度（検証用ラベル）",
    "Drift of the production model": "本番モデルのドリフト",
    "Status": "状態",
    "p-value": "p 値",
    "Feature": "特徴量",
    "Reference window": "基準ウィンドウ",
    "Current window": "現在のウィンドウ",
    "Labels requested": "依頼中のラベル",
    "Roll back": "ロールバック",
    "Discard candidate…": "候補を破棄…",
    "Discard candidate {name} v{version}? It stops being judged; production keeps serving.": (
        "候補 {name} v{version} を破棄しますか？評価は止まり、本番はそのまま稼働します。"
    ),
    "Candidate v{version} discarded.": "候補 v{version} を破棄しました。",
    "Accept as normal…": "正常として受け入れる…",
    (
        "Accept today's traffic as normal for {name} v{version}? The next {items} answers become "
        "its drift reference, and an open alarm closes."
    ): (
        "{name} v{version} の現在の入力を正常として受け入れますか？次の回答 {items} 件が"
        "ドリフトの基準になり、開いているアラームは閉じます。"
    ),
    "The next answers become the drift reference.": "次の回答がドリフトの基準になります。",
    "{status}, alarm open": "{status}（アラーム継続中）",
    "{items} of {needed} answers, still building": "回答 {items} / {needed} 件（作成中）",
    "Please confirm": "確認してください",
    "Working…": "処理中…",
    "Gates for candidate v{version} in {stage}: {items} answers, {verdict}": (
        "候補 v{version}（{stage}）のゲート: 回答 {items} 件、{verdict}"
    ),
    "no drift": "ドリフトなし",
    "not monitored": "監視していません",
    "verified": "検証済み",
    "not verified": "未検証",
    "Production": "本番",
    "Candidate": "候補",
    "Stage": "段階",
    "Name": "名前",
    "Version": "バージョン",
    "Signed by": "署名者",
    "Signature": "署名",
    "Parent": "親",
    "Source": "出所",
    "Federated run": "連合学習の実行",
    "Rollback bundle": "ロールバック用バンドル",
    "Precision": "精度形式",
    "Provider": "実行プロバイダー",
    "Gate": "ゲート",
    "Value": "値",
    "Limit": "基準",
    "Passed": "合格",
    "Detail": "詳細",
    "Group": "グループ",
    "Labels": "ラベル数",
    "Change (points)": "変化（ポイント）",
    "Too few labels": "ラベル不足",
    "This role may not see the models.": "このロールはモデルを閲覧できません。",
    "Move candidate {name} v{version} from {stage} to {target}?": (
        "候補 {name} v{version} を {stage} から {target} に進めますか？"
    ),
    "Put v{version} back into production in place of v{current}?": (
        "v{current} の代わりに v{version} を本番に戻しますか？"
    ),
    "No candidate: install a bundle to start a rollout.": (
        "候補はありません: バンドルをインストールすると展開が始まります。"
    ),
    "every gate passed": "すべてのゲートに合格",
    "not every gate has passed": "未合格のゲートがあります",
    "no check yet": "まだ確認していません",
    "Only a supervisor may promote or roll back models.": (
        "モデルの昇格とロールバックは監督者のみ可能です。"
    ),
    "none": "なし",
    "{key} (this site)": "{key}（この拠点）",
    "{run}, round {round}": "{run}、ラウンド {round}",
    "Candidate v{version} moved to {target}.": "候補 v{version} を {target} に進めました。",
    "v{version} is production again.": "v{version} が再び本番になりました。",
    "Not changed: {message}": "変更されませんでした: {message}",
    "{items} of {size} answers": "{size} 件中 {items} 件の回答",
    "No earlier production model to roll back to.": "ロールバック先となる以前の本番モデルはありません。",
    "{items} answers": "回答 {items} 件",
    "Promote to {stage}…": "{stage} に昇格…",
    "Last update sent": "最後に送信した更新",
    "Round": "ラウンド",
    "Sent at": "送信日時",
    "Bytes": "バイト数",
    "Masked (secure aggregation)": "マスク済み（秘密集計）",
    # federation
    "Differential privacy": "差分プライバシー",
    "Egress ledger: every message that left this site, newest first": (
        "送信台帳: この拠点から出たすべてのメッセージ（新しい順）"
    ),
    "Bytes sent by kind": "種類別の送信バイト数",
    "off": "オフ",
    "Time": "時刻",
    "Destination": "送信先",
    "Kind": "種類",
    "This role may not see the federation records.": "このロールは連合学習の記録を閲覧できません。",
    "Loading…": "読み込んでいます…",
    "Not joined: this site takes part in no federated training now.": (
        "未参加: この拠点は現在どの連合学習にも参加していません。"
    ),
    "All kinds": "すべての種類",
    "The ledger's hash chain verifies: no entry was changed or removed.": (
        "台帳のハッシュチェーンを検証しました: 変更や削除されたエントリはありません。"
    ),
    "The ledger's hash chain does NOT verify: tell IT.": (
        "台帳のハッシュチェーンを検証できません: IT に連絡してください。"
    ),
    "Rounds taken part in: {rounds}": "参加したラウンド: {rounds}",
    "Joined the federation at {superlink} since {since}": "{since} から {superlink} の連合学習に参加",
    "ε = {epsilon}, δ = {delta}": "ε = {epsilon}, δ = {delta}",
    "Differential privacy budget (this site, lifetime)": "差分プライバシー予算（この拠点の累計）",
    "ε budget": "ε の予算",
    "ε spent": "使用済みの ε",
    "ε left": "残りの ε",
    "Private rounds taken part in": "参加した差分プライバシー付きラウンド",
    "Last declined": "最後に辞退したラウンド",
    "unknown: {problem}": "不明: {problem}",
    "{rounds} in {runs} runs": "{runs} 回の実行で {rounds} ラウンド",
    "never": "なし",
    "Content SHA-256": "内容の SHA-256",
    # certificates of the site's kit
    "The site's TLS certificate": "拠点の TLS 証明書",
    "The kit's CA certificate": "キットの CA 証明書",
    "{what} expires on {date}, in {days} days: ask IT for a new site kit.": (
        "{what}の有効期限は {date}（あと {days} 日）です。IT に新しい拠点キットを依頼してください。"
    ),
    "{what} expired on {date}: federated training cannot connect until IT sends a new site kit.": (
        "{what}は {date} に期限切れになりました。IT から新しい拠点キットが届くまで連合学習に接続できません。"
    ),
    "{what} cannot be used: {message}": "{what}を使用できません: {message}",
}
