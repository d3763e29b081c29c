"""Texts of the regulator console in Chinese and English, and the choice between them.

A page's language is ``?lang=zh|en`` when given (the language switch sets it and a cookie),
else the ``shuyu_lang`` cookie, else the browser's ``Accept-Language``, else Chinese. Messages
are looked up by key; a :class:`Message` carries a key and its parameters so that code outside
the pages (filters, validation) can explain a refusal without choosing a language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
COOKIE = "shuyu_lang"

TEXTS: dict[str, tuple[str, str]] = {
    # (zh, en)
    "app.title": ("监管控制台", "Regulator console"),
    "app.subtitle": ("数域 · 可验证审计账本", "Shuyu · verifiable audit ledger"),
    "nav.explorer": ("账本浏览", "Ledger explorer"),
    "nav.verification": ("验证", "Verification"),
    "nav.activity": ("活动统计", "Activity"),
    "nav.disclosure": ("信息披露", "Disclosure"),
    "nav.authorizations": ("授权", "Authorizations"),
    "nav.signed_in": ("已登录", "Signed in as"),
    "nav.logout": ("退出", "Sign out"),
    "lang.switch": ("English", "中文"),
    # filters
    "filter.title": ("筛选", "Filter"),
    "filter.operator": ("运营机构", "Operator"),
    "filter.analyst": ("分析人员", "Analyst"),
    "filter.authorization": ("授权", "Authorization"),
    "filter.dataset": ("数据集", "Dataset"),
    "filter.type": ("事件类型", "Event type"),
    "filter.since": ("起始（UTC，含）", "From (UTC, inclusive)"),
    "filter.until": ("截止（UTC，含当日）", "Until (UTC, inclusive day)"),
    "filter.any": ("（全部）", "(any)"),
    "filter.apply": ("应用筛选", "Apply filter"),
    "filter.clear": ("清除", "Clear"),
    "filter.none": ("全部事件", "all events"),
    "filter.invalid": ("筛选条件有误，未执行：", "The filter was not applied:"),
    "err.text_long": ("{field}不能超过 {max} 个字符", "{field} may be at most {max} characters"),
    "err.text_control": ("{field}含有控制字符", "{field} contains a control character"),
    "err.type": (
        "事件类型应为小写点分名称（如 query 或 release.*）",
        "the event type must be a dotted lowercase name (like query, or release.* for a family)",
    ),
    "err.time": (
        "{field}应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM（UTC），收到 {value}",
        "{field} must be YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), got {value}",
    ),
    "err.range": ("起始时间晚于截止时间", "the start is after the end"),
    "err.index": ("条目编号应为非负整数，收到 {value}", "entry numbers must be whole numbers ≥ 0, got {value}"),
    "err.too_many": (
        "选中 {count} 条，证据包最多 {max} 条：请缩小筛选范围",
        "{count} entries selected; an evidence bundle holds at most {max}: narrow the filter",
    ),
    "err.nothing": ("没有选中任何条目", "no entries are selected"),
    "err.not_in_tree": ("条目 {index} 不在已签名的树中（大小 {size}）",
                        "entry {index} is not in the signed tree (size {size})"),
    # explorer
    "explorer.title": ("账本浏览", "Ledger explorer"),
    "explorer.summary": (
        "已签名树大小 {size}；按编号从新到旧显示匹配的事件。",
        "Signed tree size {size}; matching events, newest first.",
    ),
    "explorer.empty": ("没有匹配的事件。", "No events match."),
    "explorer.index": ("编号", "Index"),
    "explorer.time": ("时间（UTC）", "Time (UTC)"),
    "explorer.type": ("类型", "Type"),
    "explorer.actor": ("操作者", "Actor"),
    "explorer.subjects": ("对象", "Subjects"),
    "explorer.proof": ("包含证明", "Inclusion proof"),
    "explorer.verified": ("已验证", "verified"),
    "explorer.failed": ("验证失败", "FAILED"),
    "explorer.older": ("更早 →", "Older →"),
    "explorer.newest": ("← 最新", "← Newest"),
    "explorer.select": ("选择", "Select"),
    "explorer.export_selected": ("导出所选证据", "Export evidence of selected"),
    "explorer.export_filter": ("导出筛选结果证据（最多 {max} 条）",
                               "Export evidence of the filter's result (at most {max})"),
    "explorer.details": ("详情", "Details"),
    "entry.title": ("条目 {index}", "Entry {index}"),
    "entry.decoded": ("解码内容", "Decoded entry"),
    "entry.leaf_hash": ("叶哈希（SHA-256(0x00‖字节)）", "Leaf hash (SHA-256(0x00‖bytes))"),
    "entry.raw": ("原始字节", "Exact bytes"),
    "entry.tlog_proof": ("下载 tlog-proof", "Download tlog-proof"),
    "entry.evidence": ("下载证据包（zip）", "Download evidence (zip)"),
    "entry.proof_ok": (
        "服务器已验证：该条目的字节与叶哈希一致，包含证明对签名检查点（大小 {size}）的根成立，检查点签名有效。",
        "Verified on the server: the bytes match the leaf hash, the inclusion proof reaches the "
        "root of the signed checkpoint (size {size}), and the checkpoint signature is valid.",
    ),
    "entry.offline": ("离线验证", "Verify offline"),
    "entry.problem": ("完整性问题", "Integrity problem"),
    "entry.path": ("证明路径", "Proof path"),
    # verification
    "verify.title": ("验证", "Verification"),
    "verify.ok": ("全部检查通过", "All checks passed"),
    "verify.bad": ("检查失败", "A check FAILED"),
    "verify.latest": ("最新检查点", "Latest checkpoint"),
    "verify.origin": ("来源", "Origin"),
    "verify.size": ("树大小", "Tree size"),
    "verify.root": ("根哈希", "Root hash"),
    "verify.signed_at": ("签名时间", "Signed at"),
    "verify.signature": ("日志签名", "Log signature"),
    "verify.vkey": ("日志验证公钥", "Log verifier key"),
    "verify.sig_ok": ("有效（{name}）", "valid ({name})"),
    "verify.cosigs": ("见证人联署", "Witness cosignatures"),
    "verify.witness": ("见证人", "Witness"),
    "verify.cosig_time": ("联署时间", "Cosigned at"),
    "verify.cosig_valid": ("有效", "valid"),
    "verify.cosig_unknown": ("未知公钥，未验证", "unknown key, not verified"),
    "verify.no_cosigs": ("该检查点尚无联署。", "No cosignatures on this checkpoint yet."),
    "verify.consistency": ("一致性检查", "Consistency check"),
    "verify.previous": (
        "与本监管人员上次看到的检查点（大小 {old}，{when}）相比",
        "Against the checkpoint this regulator saw last (size {old}, {when})",
    ),
    "verify.first_visit": (
        "首次访问：已记住当前检查点，下次访问时将检查新检查点是否与其一致。",
        "First visit: the current checkpoint is remembered; the next visit checks that the new "
        "one extends it.",
    ),
    "verify.consistent": ("一致：新树包含旧树的全部条目（RFC 9162 一致性证明已验证）。",
                          "Consistent: the new tree extends the old one (RFC 9162 consistency "
                          "proof verified)."),
    "verify.same": ("树未变化。", "The tree has not changed."),
    "verify.inconsistent": ("不一致！", "INCONSISTENT!"),
    "verify.your_witness": ("您的见证人", "Your witness"),
    "verify.witness_name": ("见证人名称", "Witness name"),
    "verify.save": ("保存", "Save"),
    "verify.last_cosigned": (
        "{name} 上次联署：树大小 {size}，{when}",
        "{name} last cosigned tree size {size} at {when}",
    ),
    "verify.never_cosigned": ("{name} 尚未联署过本日志。", "{name} has not cosigned this log yet."),
    "verify.no_witness": (
        "尚未设置见证人名称：填写您用 shuyu ledger witness init 创建的名称。",
        "No witness name set: enter the name you created with shuyu ledger witness init.",
    ),
    "verify.cosign_howto": (
        "联署（您的见证私钥始终留在您自己的计算机上）：",
        "To cosign (your witness key never leaves your own machine):",
    ),
    "verify.recheck": ("重新检查", "Check again"),
    "verify.witness_saved": ("见证人名称已保存。", "Witness name saved."),
    "err.witness_name": (
        "见证人名称不能为空，不能含空格或“+”，最多 200 个字符",
        "a witness name is non-empty, without spaces or '+', at most 200 characters",
    ),
    # activity
    "activity.title": ("活动统计", "Activity"),
    "activity.range": ("统计区间", "Period"),
    "activity.queries": ("各运营机构每日查询数", "Queries per day per operator"),
    "activity.refused": ("每日被拒绝的查询", "Refused queries per day"),
    "activity.releases": ("出域申请及其结果", "Releases and their outcomes"),
    "activity.budget": ("各授权已用隐私预算（ε）", "Privacy budget spent per authorization (ε)"),
    "activity.none": ("该区间没有数据。", "No data in this period."),
    "activity.total": ("合计", "Total"),
    "activity.day": ("日期", "Day"),
    "activity.count": ("数量", "Count"),
    "activity.epsilon": ("ε", "ε"),
    # disclosure
    "disclosure.title": ("年度信息披露", "Annual disclosure"),
    "disclosure.year": ("年度", "Year"),
    "disclosure.intro": (
        "依据账本条目生成：{year} 年度内有效的授权、授权数据、范围、期限、用途类别及已发布的数据产品。",
        "Generated from ledger entries: authorizations in force during {year}, the data they "
        "cover, scope, term, use class, and the data products released.",
    ),
    "disclosure.operator": ("运营机构", "Operator"),
    "disclosure.authorization": ("授权编号", "Authorization"),
    "disclosure.scenario": ("应用场景", "Scenario"),
    "disclosure.use_class": ("用途类别", "Use class"),
    "disclosure.term": ("授权期限", "Term"),
    "disclosure.status": ("年末状态", "Status at year end"),
    "disclosure.data": ("授权数据", "Authorized data"),
    "disclosure.scope": ("范围（字段、方式）", "Scope (columns, access)"),
    "disclosure.products": ("已发布产品", "Products released"),
    "disclosure.no_products": ("无", "none"),
    "disclosure.none": ("该年度没有有效授权。", "No authorization was in force that year."),
    "disclosure.csv": ("下载 CSV", "Download CSV"),
    "disclosure.json": ("下载 JSON", "Download JSON"),
    "disclosure.grade": ("分级", "grade"),
    "disclosure.code": ("登记编码", "registration code"),
    "err.year": ("年度应为 2000 至 2100 之间的整数，收到 {value}",
                 "the year must be a whole number from 2000 to 2100, got {value}"),
    # authorizations and suspension
    "auth.title": ("授权", "Authorizations"),
    "auth.id": ("授权编号", "Authorization"),
    "auth.status": ("状态（账本所示）", "Status (from the ledger)"),
    "auth.events": ("事件", "Events"),
    "auth.suspend": ("暂停授权", "Suspend authorization"),
    "auth.suspend_note": (
        "暂停先写入账本再生效；网关立即拒绝该授权下的查询，看守服务停止其运行中的沙箱。",
        "A suspension is written to the ledger before it takes effect; the gateway refuses "
        "queries under it at once and the watchdog stops its running sandboxes.",
    ),
    "auth.none": ("账本中还没有授权。", "The ledger records no authorization yet."),
    "auth.reason": ("暂停原因", "Reason for the suspension"),
    "auth.confirm": ("确认暂停", "Suspend now"),
    "auth.suspended_ok": ("授权 {id} 已暂停（账本条目已写入）。",
                          "Authorization {id} is suspended (ledger entry written)."),
    "err.reason": ("请填写暂停原因（2 至 2000 个字符）",
                   "give the reason for the suspension (2 to 2000 characters)"),
    "err.auth_id": ("授权编号格式不正确：{value}", "not an authorization id: {value}"),
    "err.csrf": ("表单已过期或来源不明，请重新打开页面再提交。",
                 "The form expired or did not come from this console: open the page again and "
                 "resubmit."),
    "err.refused": ("未执行：{reason}", "Not done: {reason}"),
    # access
    "forbidden.title": ("无权访问", "Access denied"),
    "forbidden.body": (
        "{user} 不在监管人员组（{group}）中。监管控制台和账本条目只对监管人员开放；检查点、哈希瓦片和证明（机器接口，不含条目内容）仍可供工具和见证方使用。",
        "{user} is not in the regulators group ({group}). The regulator console and the ledger's "
        "entries are for regulators only; the checkpoint, hash tiles and proofs (the machine "
        "API without entry content) stay open to tools and witnesses.",
    ),
    "error.title": ("出错了", "Something went wrong"),
    "notfound.title": ("未找到", "Not found"),
}


@dataclass(frozen=True)
class Message:
    """A text to show, by key, with its parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        return translate(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render("en")


def translate(key: str, lang: str, **params: Any) -> str:
    pair = TEXTS.get(key)
    if pair is None:
        return key
    template = pair[0] if lang == "zh" else pair[1]
    if not params:
        return template
    return template.format(**{k: translate(v, lang) if isinstance(v, str) and v in TEXTS else v
                              for k, v in params.items()})


def choose_lang(query: str | None, cookie: str | None, accept: str | None) -> str:
    for value in (query, cookie):
        if value in LANGS:
            return value  # type: ignore[return-value]
    if accept:
        for part in accept.split(","):
            tag = part.split(";")[0].strip().lower()
            if tag.startswith("zh"):
                return "zh"
            if tag.startswith("en"):
                return "en"
    return DEFAULT_LANG
