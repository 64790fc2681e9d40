package store

// The single-row inserts of the store's other writes (approvals, reactions,
// refusals, survey links, points, answers and emails, cases), written out: the SQL
// that runs is the SQL written here. They use ? placeholders, which exec
// numbers for PostgreSQL (dialect.rebind); each lists the columns of its
// row helper or column list, in that order (TestSingleInserts checks it).
const (
	insertDecision = `INSERT INTO decisions (org_id, id, member_id, customer_id, action, amount, currency, reason, context, outcome,
	policy_version, rule, explanation_code, explanation_args, flagged, budgets, act_id,
	approval_id, refusal_id, created_at, after_the_fact, team)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertApproval = `INSERT INTO approvals (org_id, id, decision_id, member_id, customer_id, action, amount, approver_role, sla_us,
	due_at, on_timeout, escalate_to, status, created_at, kind, description, level, decided_by,
	decided_at, comment, act_id)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertApprovalEvent = `INSERT INTO approval_events (org_id, id, approval_id, kind, actor, from_role, to_role, comment, at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertAct = `INSERT INTO acts (org_id, id, decision_id, member_id, customer_id, action, amount, currency, reason,
	flagged, created_at, after_the_fact, team)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertCase = `INSERT INTO survey_cases (org_id, id, answer_id, act_id, member_id, team, scale, score, role, status, due_at,
	escalated_at, action, outcome, reaction, closed_by, closed_at, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertReaction = `INSERT INTO reactions (org_id, id, act_id, source, sentiment, note, member_id, created_at, score)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertRefusal = `INSERT INTO refusals (org_id, id, decision_id, member_id, customer_id, action, amount, wanted, reason_kind,
	rule, customer_left, note, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertSurveyLink = `INSERT INTO survey_links (org_id, id, token_hash, act_id, member_id, customer_id, team, created_by, created_at,
	expires_at, answered_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertSurveyPoint = `INSERT INTO survey_points (org_id, id, name, kind, team, token, token_hash, ask_server, active, created_by,
	created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertSurveyAnswer = `INSERT INTO survey_answers (org_id, id, link_id, point_id, act_id, member_id, customer_id, team, scale, score,
	comment, language, low, device, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertSurveyEmail = `INSERT INTO survey_emails (org_id, id, link_id, address, language, token, status, attempts,
	last_error, created_by, created_at, updated_at, sent_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// singleInserts pairs each statement with the columns its values follow
// (for the test).
var singleInserts = []struct {
	query string
	cols  []string
}{
	{insertDecision, decisionCols},
	{insertApproval, approvalAllCols},
	{insertApprovalEvent, approvalEventCols},
	{insertAct, actCols},
	{insertCase, caseCols},
	{insertReaction, reactionCols},
	{insertRefusal, refusalCols},
	{insertSurveyLink, surveyLinkCols},
	{insertSurveyPoint, surveyPointCols},
	{insertSurveyAnswer, surveyAnswerCols},
	{insertSurveyEmail, surveyEmailCols},
}
