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
        <source>Choose image…</source>
        <translation>画像を選択…</translation>
    </message>
    <message>
        <source>Connecting to the agent…</source>
        <translation>エージェントに接続しています…</translation>
    </message>
    <message>
        <source>Federation</source>
        <translation>連合学習</translation>
    </message>
    <message>
        <source>Genba operator</source>
        <translation>Genba オペレーター</translation>
    </message>
    <message>
        <source>Inspect</source>
        <translation>判定</translation>
    </message>
    <message>
        <source>KPIs</source>
        <translation>KPI</translation>
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
        <source>No answer yet</source>
        <translation>まだ回答はありません</translation>
    </message>
    <message>
        <source>Pilot suggestion (not the answer): {label}, {pct} %</source>
        <translation>パイロットの提案（回答ではありません）: {label}, {pct} %</translation>
    </message>
    <message>
        <source>Predict</source>
        <translation>予測</translation>
    </message>
    <message>
        <source>Problem: {message}</source>
        <translation>問題: {message}</translation>
    </message>
    <message>
        <source>Review queue</source>
        <translation>確認キュー</translation>
    </message>
    <message>
        <source>Saved: {label} ({kind})</source>
        <translation>保存しました: {label}（{kind}）</translation>
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
        <source>This role may not label; sign in as an operator to accept or correct.</source>
        <translation>このロールはラベル付けできません。承認・修正にはオペレーターとしてサインインしてください。</translation>
    </message>
    <message>
        <source>Type, paste or scan a report, then press Enter</source>
        <translation>報告を入力・貼り付け・スキャンして Enter</translation>
    </message>
    <message>
        <source>Why? (F1)</source>
        <translation>理由 (F1)</translation>
    </message>
    <message>
        <source>Working out why…</source>
        <translation>理由を計算しています…</translation>
    </message>
    <message>
        <source>accepted</source>
        <translation>承認</translation>
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
        <source>orange: for the answer · blue: against it</source>
        <translation>オレンジ: 回答を支持 · 青: 回答に反対</translation>
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
        <source>shadow</source>
        <translation>シャドー</translation>
    </message>
    <message>
        <source>{pct} % confident</source>
        <translation>確信度 {pct} %</translation>
    </message>
</context>
</TS>
