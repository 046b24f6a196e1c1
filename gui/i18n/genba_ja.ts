<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="ja_JP">
<context>
    <name>genba</name>
    <message>
        <source>Accept</source>
        <translation>承認</translation>
    </message>
    <message>
        <source>Accept as normal…</source>
        <translation>正常として受け入れる…</translation>
    </message>
    <message>
        <source>Accept today's traffic as normal for {name} v{version}? The next {items} answers become its drift reference, and an open alarm closes.</source>
        <translation>{name} v{version} の現在の入力を正常として受け入れますか？次の回答 {items} 件がドリフトの基準になり、開いているアラームは閉じます。</translation>
    </message>
    <message>
        <source>Accepted without correction</source>
        <translation>修正なしで承認</translation>
    </message>
    <message>
        <source>Accuracy by group (held-out labels)</source>
        <translation>グループ別の精度（検証用ラベル）</translation>
    </message>
    <message>
        <source>Accuracy change (points)</source>
        <translation>精度の変化（ポイント）</translation>
    </message>
    <message>
        <source>Accuracy on operator labels</source>
        <translation>オペレーターのラベルに対する精度</translation>
    </message>
    <message>
        <source>Accuracy, acceptance and agreement per day</source>
        <translation>日ごとの精度・承認率・一致率</translation>
    </message>
    <message>
        <source>Agreement with production</source>
        <translation>本番との一致率</translation>
    </message>
    <message>
        <source>All kinds</source>
        <translation>すべての種類</translation>
    </message>
    <message>
        <source>Answers in this stage</source>
        <translation>この段階での回答数</translation>
    </message>
    <message>
        <source>Bytes</source>
        <translation>バイト数</translation>
    </message>
    <message>
        <source>Bytes sent by kind</source>
        <translation>種類別の送信バイト数</translation>
    </message>
    <message>
        <source>Candidate</source>
        <translation>候補</translation>
    </message>
    <message>
        <source>Candidate v{version} discarded.</source>
        <translation>候補 v{version} を破棄しました。</translation>
    </message>
    <message>
        <source>Candidate v{version} moved to {target}.</source>
        <translation>候補 v{version} を {target} に進めました。</translation>
    </message>
    <message>
        <source>Change (points)</source>
        <translation>変化（ポイント）</translation>
    </message>
    <message>
        <source>Choose image…</source>
        <translation>画像を選択…</translation>
    </message>
    <message>
        <source>Connecting to the agent…</source>
        <translation>エージェントに接続しています…</translation>
    </message>
    <message>
        <source>Content SHA-256</source>
        <translation>内容の SHA-256</translation>
    </message>
    <message>
        <source>Could not save {path}: {error}</source>
        <translation>{path} を保存できませんでした: {error}</translation>
    </message>
    <message>
        <source>Current window</source>
        <translation>現在のウィンドウ</translation>
    </message>
    <message>
        <source>Destination</source>
        <translation>送信先</translation>
    </message>
    <message>
        <source>Detail</source>
        <translation>詳細</translation>
    </message>
    <message>
        <source>Differential privacy</source>
        <translation>差分プライバシー</translation>
    </message>
    <message>
        <source>Differential privacy budget (this site, lifetime)</source>
        <translation>差分プライバシー予算（この拠点の累計）</translation>
    </message>
    <message>
        <source>Discard candidate {name} v{version}? It stops being judged; production keeps serving.</source>
        <translation>候補 {name} v{version} を破棄しますか？評価は止まり、本番はそのまま稼働します。</translation>
    </message>
    <message>
        <source>Discard candidate…</source>
        <translation>候補を破棄…</translation>
    </message>
    <message>
        <source>Drift events per day</source>
        <translation>日ごとのドリフト発生</translation>
    </message>
    <message>
        <source>Drift of the production model</source>
        <translation>本番モデルのドリフト</translation>
    </message>
    <message>
        <source>Egress ledger: every message that left this site, newest first</source>
        <translation>送信台帳: この拠点から出たすべてのメッセージ（新しい順）</translation>
    </message>
    <message>
        <source>Export CSV…</source>
        <translation>CSV に書き出す…</translation>
    </message>
    <message>
        <source>Feature</source>
        <translation>特徴量</translation>
    </message>
    <message>
        <source>Federated run</source>
        <translation>連合学習の実行</translation>
    </message>
    <message>
        <source>Federation</source>
        <translation>連合学習</translation>
    </message>
    <message>
        <source>Gate</source>
        <translation>ゲート</translation>
    </message>
    <message>
        <source>Gates for candidate v{version} in {stage}: {items} answers, {verdict}</source>
        <translation>候補 v{version}（{stage}）のゲート: 回答 {items} 件、{verdict}</translation>
    </message>
    <message>
        <source>Genba operator</source>
        <translation>Genba オペレーター</translation>
    </message>
    <message>
        <source>Group</source>
        <translation>グループ</translation>
    </message>
    <message>
        <source>Inspect</source>
        <translation>判定</translation>
    </message>
    <message>
        <source>Joined the federation at {superlink} since {since}</source>
        <translation>{since} から {superlink} の連合学習に参加</translation>
    </message>
    <message>
        <source>KPIs</source>
        <translation>KPI</translation>
    </message>
    <message>
        <source>Kind</source>
        <translation>種類</translation>
    </message>
    <message>
        <source>Labels</source>
        <translation>ラベル数</translation>
    </message>
    <message>
        <source>Labels per day</source>
        <translation>1 日あたりのラベル数</translation>
    </message>
    <message>
        <source>Labels requested</source>
        <translation>依頼中のラベル</translation>
    </message>
    <message>
        <source>Last declined</source>
        <translation>最後に辞退したラウンド</translation>
    </message>
    <message>
        <source>Last update sent</source>
        <translation>最後に送信した更新</translation>
    </message>
    <message>
        <source>Last {days} days</source>
        <translation>直近 {days} 日</translation>
    </message>
    <message>
        <source>Latency of production answers per day</source>
        <translation>日ごとの本番回答のレイテンシ</translation>
    </message>
    <message>
        <source>Latency p95 (ms)</source>
        <translation>レイテンシ p95 (ms)</translation>
    </message>
    <message>
        <source>Lead time to production (median)</source>
        <translation>本番までのリードタイム（中央値）</translation>
    </message>
    <message>
        <source>Limit</source>
        <translation>基準</translation>
    </message>
    <message>
        <source>Load the queue again (R)</source>
        <translation>キューを再読み込み (R)</translation>
    </message>
    <message>
        <source>Loading the image…</source>
        <translation>画像を読み込んでいます…</translation>
    </message>
    <message>
        <source>Loading the queue…</source>
        <translation>キューを読み込んでいます…</translation>
    </message>
    <message>
        <source>Loading the report…</source>
        <translation>レポートを読み込んでいます…</translation>
    </message>
    <message>
        <source>Loading…</source>
        <translation>読み込んでいます…</translation>
    </message>
    <message>
        <source>Masked (secure aggregation)</source>
        <translation>マスク済み（秘密集計）</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>モデル</translation>
    </message>
    <message>
        <source>Model {model} · stage {stage} · {provider} · {ms} ms</source>
        <translation>モデル {model} · 段階 {stage} · {provider} · {ms} ms</translation>
    </message>
    <message>
        <source>Model: {label}</source>
        <translation>モデル: {label}</translation>
    </message>
    <message>
        <source>Move candidate {name} v{version} from {stage} to {target}?</source>
        <translation>候補 {name} v{version} を {stage} から {target} に進めますか？</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名前</translation>
    </message>
    <message>
        <source>Net cost–benefit</source>
        <translation>正味の費用対効果</translation>
    </message>
    <message>
        <source>No answer yet</source>
        <translation>まだ回答はありません</translation>
    </message>
    <message>
        <source>No candidate: install a bundle to start a rollout.</source>
        <translation>候補はありません: バンドルをインストールすると展開が始まります。</translation>
    </message>
    <message>
        <source>No earlier production model to roll back to.</source>
        <translation>ロールバック先となる以前の本番モデルはありません。</translation>
    </message>
    <message>
        <source>Not changed: {message}</source>
        <translation>変更されませんでした: {message}</translation>
    </message>
    <message>
        <source>Not joined: this site takes part in no federated training now.</source>
        <translation>未参加: この拠点は現在どの連合学習にも参加していません。</translation>
    </message>
    <message>
        <source>Nothing to label: the queue is empty.</source>
        <translation>ラベル付けするものはありません: キューは空です。</translation>
    </message>
    <message>
        <source>Only a supervisor may promote or roll back models.</source>
        <translation>モデルの昇格とロールバックは監督者のみ可能です。</translation>
    </message>
    <message>
        <source>Parent</source>
        <translation>親</translation>
    </message>
    <message>
        <source>Passed</source>
        <translation>合格</translation>
    </message>
    <message>
        <source>Pilot suggestion (not the answer): {label}, {pct} %</source>
        <translation>パイロットの提案（回答ではありません）: {label}, {pct} %</translation>
    </message>
    <message>
        <source>Please confirm</source>
        <translation>確認してください</translation>
    </message>
    <message>
        <source>Precision</source>
        <translation>精度形式</translation>
    </message>
    <message>
        <source>Predict</source>
        <translation>予測</translation>
    </message>
    <message>
        <source>Private rounds taken part in</source>
        <translation>参加した差分プライバシー付きラウンド</translation>
    </message>
    <message>
        <source>Problem: {message}</source>
        <translation>問題: {message}</translation>
    </message>
    <message>
        <source>Production</source>
        <translation>本番</translation>
    </message>
    <message>
        <source>Promote to {stage}…</source>
        <translation>{stage} に昇格…</translation>
    </message>
    <message>
        <source>Provider</source>
        <translation>実行プロバイダー</translation>
    </message>
    <message>
        <source>Put v{version} back into production in place of v{current}?</source>
        <translation>v{current} の代わりに v{version} を本番に戻しますか？</translation>
    </message>
    <message>
        <source>Queue done: {done} labelled, {skipped} skipped. Press R to load more.</source>
        <translation>キュー完了: {done} 件ラベル付け、{skipped} 件スキップ。R で続きを読み込みます。</translation>
    </message>
    <message>
        <source>Random check: label what you see, whatever the model says</source>
        <translation>抜き取り確認: モデルの答えに関わらず、見たとおりにラベルを付けてください</translation>
    </message>
    <message>
        <source>Reference window</source>
        <translation>基準ウィンドウ</translation>
    </message>
    <message>
        <source>Report of {first} to {last} (UTC), made {at}</source>
        <translation>{first} から {last} までのレポート（UTC）、作成 {at}</translation>
    </message>
    <message>
        <source>Review queue</source>
        <translation>確認キュー</translation>
    </message>
    <message>
        <source>Roll back</source>
        <translation>ロールバック</translation>
    </message>
    <message>
        <source>Rollback bundle</source>
        <translation>ロールバック用バンドル</translation>
    </message>
    <message>
        <source>Round</source>
        <translation>ラウンド</translation>
    </message>
    <message>
        <source>Rounds taken part in: {rounds}</source>
        <translation>参加したラウンド: {rounds}</translation>
    </message>
    <message>
        <source>Saved {path}</source>
        <translation>{path} に保存しました</translation>
    </message>
    <message>
        <source>Saved: {label} ({kind})</source>
        <translation>保存しました: {label}（{kind}）</translation>
    </message>
    <message>
        <source>Seconds per label</source>
        <translation>1 ラベルあたりの秒数</translation>
    </message>
    <message>
        <source>Sent at</source>
        <translation>送信日時</translation>
    </message>
    <message>
        <source>Signature</source>
        <translation>署名</translation>
    </message>
    <message>
        <source>Signed by</source>
        <translation>署名者</translation>
    </message>
    <message>
        <source>Signed in as {role}: this role may only ask for predictions.</source>
        <translation>{role} としてサインイン: このロールは予測の依頼のみ可能です。</translation>
    </message>
    <message>
        <source>Site {site} · signed in as {role} · production {name} v{version}</source>
        <translation>拠点 {site} · {role} としてサインイン · 本番 {name} v{version}</translation>
    </message>
    <message>
        <source>Skip (S)</source>
        <translation>スキップ (S)</translation>
    </message>
    <message>
        <source>Source</source>
        <translation>出所</translation>
    </message>
    <message>
        <source>Stage</source>
        <translation>段階</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状態</translation>
    </message>
    <message>
        <source>The image could not be shown: not a picture this app can read</source>
        <translation>画像を表示できません: このアプリで読めない形式です</translation>
    </message>
    <message>
        <source>The image could not be shown: {problem}</source>
        <translation>画像を表示できません: {problem}</translation>
    </message>
    <message>
        <source>The kit's CA certificate</source>
        <translation>キットの CA 証明書</translation>
    </message>
    <message>
        <source>The ledger's hash chain does NOT verify: tell IT.</source>
        <translation>台帳のハッシュチェーンを検証できません: IT に連絡してください。</translation>
    </message>
    <message>
        <source>The ledger's hash chain verifies: no entry was changed or removed.</source>
        <translation>台帳のハッシュチェーンを検証しました: 変更や削除されたエントリはありません。</translation>
    </message>
    <message>
        <source>The model gave no answer</source>
        <translation>モデルは回答しませんでした</translation>
    </message>
    <message>
        <source>The next answers become the drift reference.</source>
        <translation>次の回答がドリフトの基準になります。</translation>
    </message>
    <message>
        <source>The site's TLS certificate</source>
        <translation>拠点の TLS 証明書</translation>
    </message>
    <message>
        <source>This role may not label; sign in as an operator to accept or correct.</source>
        <translation>このロールはラベル付けできません。承認・修正にはオペレーターとしてサインインしてください。</translation>
    </message>
    <message>
        <source>This role may not read the KPIs.</source>
        <translation>このロールは KPI を閲覧できません。</translation>
    </message>
    <message>
        <source>This role may not see the federation records.</source>
        <translation>このロールは連合学習の記録を閲覧できません。</translation>
    </message>
    <message>
        <source>This role may not see the models.</source>
        <translation>このロールはモデルを閲覧できません。</translation>
    </message>
    <message>
        <source>Time</source>
        <translation>時刻</translation>
    </message>
    <message>
        <source>Too few labels</source>
        <translation>ラベル不足</translation>
    </message>
    <message>
        <source>Too few labels or compared answers on every day</source>
        <translation>どの日もラベルまたは比較回答が不足しています</translation>
    </message>
    <message>
        <source>Too few production answers on every day</source>
        <translation>どの日も本番回答が不足しています</translation>
    </message>
    <message>
        <source>Too few timed labels on every day</source>
        <translation>どの日も時間計測付きラベルが不足しています</translation>
    </message>
    <message>
        <source>Type, paste or scan a report, then press Enter</source>
        <translation>報告を入力・貼り付け・スキャンして Enter</translation>
    </message>
    <message>
        <source>Value</source>
        <translation>値</translation>
    </message>
    <message>
        <source>Version</source>
        <translation>バージョン</translation>
    </message>
    <message>
        <source>Why? (F1)</source>
        <translation>理由 (F1)</translation>
    </message>
    <message>
        <source>Window:</source>
        <translation>期間:</translation>
    </message>
    <message>
        <source>Working out why…</source>
        <translation>理由を計算しています…</translation>
    </message>
    <message>
        <source>Working…</source>
        <translation>処理中…</translation>
    </message>
    <message>
        <source>Worst group change (points)</source>
        <translation>最も悪いグループの変化（ポイント）</translation>
    </message>
    <message>
        <source>acceptance</source>
        <translation>承認率</translation>
    </message>
    <message>
        <source>accepted</source>
        <translation>承認</translation>
    </message>
    <message>
        <source>accuracy</source>
        <translation>精度</translation>
    </message>
    <message>
        <source>agreement</source>
        <translation>一致率</translation>
    </message>
    <message>
        <source>candidate v{version} in {stage}</source>
        <translation>候補 v{version}（{stage}）</translation>
    </message>
    <message>
        <source>correction</source>
        <translation>修正</translation>
    </message>
    <message>
        <source>drift</source>
        <translation>ドリフト</translation>
    </message>
    <message>
        <source>every gate passed</source>
        <translation>すべてのゲートに合格</translation>
    </message>
    <message>
        <source>exported by IT</source>
        <translation>IT がエクスポート</translation>
    </message>
    <message>
        <source>federated training</source>
        <translation>連合学習</translation>
    </message>
    <message>
        <source>labels</source>
        <translation>ラベル</translation>
    </message>
    <message>
        <source>mean</source>
        <translation>平均</translation>
    </message>
    <message>
        <source>median</source>
        <translation>中央値</translation>
    </message>
    <message>
        <source>never</source>
        <translation>なし</translation>
    </message>
    <message>
        <source>no</source>
        <translation>いいえ</translation>
    </message>
    <message>
        <source>no check yet</source>
        <translation>まだ確認していません</translation>
    </message>
    <message>
        <source>no drift</source>
        <translation>ドリフトなし</translation>
    </message>
    <message>
        <source>none</source>
        <translation>なし</translation>
    </message>
    <message>
        <source>not every gate has passed</source>
        <translation>未合格のゲートがあります</translation>
    </message>
    <message>
        <source>not monitored</source>
        <translation>監視していません</translation>
    </message>
    <message>
        <source>not verified</source>
        <translation>未検証</translation>
    </message>
    <message>
        <source>off</source>
        <translation>オフ</translation>
    </message>
    <message>
        <source>orange: for the answer · blue: against it</source>
        <translation>オレンジ: 回答を支持 · 青: 回答に反対</translation>
    </message>
    <message>
        <source>p-value</source>
        <translation>p 値</translation>
    </message>
    <message>
        <source>pilot</source>
        <translation>パイロット</translation>
    </message>
    <message>
        <source>production</source>
        <translation>本番</translation>
    </message>
    <message>
        <source>rollback by IT</source>
        <translation>IT によるロールバック</translation>
    </message>
    <message>
        <source>shadow</source>
        <translation>シャドー</translation>
    </message>
    <message>
        <source>trained at a site</source>
        <translation>拠点で学習</translation>
    </message>
    <message>
        <source>unknown: {problem}</source>
        <translation>不明: {problem}</translation>
    </message>
    <message>
        <source>verified</source>
        <translation>検証済み</translation>
    </message>
    <message>
        <source>v{version} is production again.</source>
        <translation>v{version} が再び本番になりました。</translation>
    </message>
    <message>
        <source>warning</source>
        <translation>警告</translation>
    </message>
    <message>
        <source>yes</source>
        <translation>はい</translation>
    </message>
    <message>
        <source>{count} skipped</source>
        <translation>{count} 件スキップ</translation>
    </message>
    <message>
        <source>{done} of {total} labelled</source>
        <translation>{total} 件中 {done} 件ラベル付け済み</translation>
    </message>
    <message>
        <source>{items} answers</source>
        <translation>回答 {items} 件</translation>
    </message>
    <message>
        <source>{items} of {needed} answers, still building</source>
        <translation>回答 {items} / {needed} 件（作成中）</translation>
    </message>
    <message>
        <source>{items} of {size} answers</source>
        <translation>{size} 件中 {items} 件の回答</translation>
    </message>
    <message>
        <source>{key} (this site)</source>
        <translation>{key}（この拠点）</translation>
    </message>
    <message>
        <source>{pct} % confident</source>
        <translation>確信度 {pct} %</translation>
    </message>
    <message>
        <source>{rounds} in {runs} runs</source>
        <translation>{runs} 回の実行で {rounds} ラウンド</translation>
    </message>
    <message>
        <source>{run}, round {round}</source>
        <translation>{run}、ラウンド {round}</translation>
    </message>
    <message>
        <source>{status}, alarm open</source>
        <translation>{status}（アラーム継続中）</translation>
    </message>
    <message>
        <source>{what} cannot be used: {message}</source>
        <translation>{what}を使用できません: {message}</translation>
    </message>
    <message>
        <source>{what} expired on {date}: federated training cannot connect until IT sends a new site kit.</source>
        <translation>{what}は {date} に期限切れになりました。IT から新しい拠点キットが届くまで連合学習に接続できません。</translation>
    </message>
    <message>
        <source>{what} expires on {date}, in {days} days: ask IT for a new site kit.</source>
        <translation>{what}の有効期限は {date}（あと {days} 日）です。IT に新しい拠点キットを依頼してください。</translation>
    </message>
    <message>
        <source>ε = {epsilon}, δ = {delta}</source>
        <translation>ε = {epsilon}, δ = {delta}</translation>
    </message>
    <message>
        <source>ε budget</source>
        <translation>ε の予算</translation>
    </message>
    <message>
        <source>ε left</source>
        <translation>残りの ε</translation>
    </message>
    <message>
        <source>ε spent</source>
        <translation>使用済みの ε</translation>
    </message>
</context>
</TS>
