-- The baseline for scripts/bench.sh: the eight example requirements judged straight from the raw
-- events by hand-written SQL in the sqlite3 CLI, using the same index. It gives the same answer as
-- `soc2-operator evaluate` (state, coverage, events per requirement); bench.py checks that.
-- Parameter: @now, microseconds since the Unix epoch. Window 30d; minEventsPerInterval 1; tolerance 0.
WITH controls(req, control, cadence) AS (VALUES
    ('CC2.1', 'ai-surface-mapping', 604800000000),
    ('CC2.1', 'decision-trace-classification', 86400000000),
    ('CC5.2', 'agent-identity-jwt', 86400000000),
    ('CC5.2', 'sso', 86400000000),
    ('CC5.2', 'role-hierarchy', 604800000000),
    ('CC6.1', 'workflow-tokens', 86400000000),
    ('CC6.1', 'clerk-session-sync', 86400000000),
    ('CC6.1', 'siem-credential-encryption', 604800000000),
    ('CC6.6', 'policy-engine', 86400000000),
    ('CC6.6', 'context-gate', 86400000000),
    ('CC6.6', 'restricted-mode', 604800000000),
    ('CC7.2', 'behavioral-monitor', 86400000000),
    ('CC7.2', 'intent-drift-detection', 86400000000),
    ('CC7.2', 'alerts-escalations', 604800000000),
    ('CC7.3', 'hitl-escalation-queue', 86400000000),
    ('CC7.3', 'global-kill-switch', 2592000000000),
    ('CC7.4', 'policy-writer-versions', 604800000000),
    ('CC7.4', 'change-requests', 604800000000),
    ('CC8.1', 'decision-trace-hash-chain', 86400000000),
    ('CC8.1', 'public-evidence-verification', 86400000000)
),
selectors(req, control, event_type, outcome, cadence) AS (VALUES
    ('CC2.1', 'ai-surface-mapping', 'surface_map.updated', NULL, 604800000000),
    ('CC2.1', 'decision-trace-classification', 'decision_trace.classified', NULL, 86400000000),
    ('CC5.2', 'agent-identity-jwt', 'agent.token.verified', NULL, 86400000000),
    ('CC5.2', 'sso', 'auth.sso.login', NULL, 86400000000),
    ('CC5.2', 'role-hierarchy', 'rbac.role.changed', NULL, 604800000000),
    ('CC6.1', 'workflow-tokens', 'token.workflow.issued', NULL, 86400000000),
    ('CC6.1', 'clerk-session-sync', 'auth.session.synced', NULL, 86400000000),
    ('CC6.1', 'siem-credential-encryption', 'siem.credential.encrypted', 'success', 604800000000),
    ('CC6.6', 'policy-engine', 'policy.decision', 'allow', 86400000000),
    ('CC6.6', 'policy-engine', 'policy.decision', 'deny', 86400000000),
    ('CC6.6', 'context-gate', 'context_gate.tool_filtered', NULL, 86400000000),
    ('CC6.6', 'restricted-mode', 'restricted_mode.changed', NULL, 604800000000),
    ('CC7.2', 'behavioral-monitor', 'monitor.behavior.evaluated', NULL, 86400000000),
    ('CC7.2', 'intent-drift-detection', 'monitor.intent_drift.scanned', NULL, 86400000000),
    ('CC7.2', 'alerts-escalations', 'alert.raised', NULL, 604800000000),
    ('CC7.2', 'alerts-escalations', 'alert.escalated', NULL, 604800000000),
    ('CC7.3', 'hitl-escalation-queue', 'hitl.escalation.resolved', NULL, 86400000000),
    ('CC7.3', 'global-kill-switch', 'kill_switch.drill', NULL, 2592000000000),
    ('CC7.3', 'global-kill-switch', 'kill_switch.activated', NULL, 2592000000000),
    ('CC7.4', 'policy-writer-versions', 'policy.version.published', NULL, 604800000000),
    ('CC7.4', 'change-requests', 'change_request.approved', NULL, 604800000000),
    ('CC7.4', 'change-requests', 'change_request.merged', NULL, 604800000000),
    ('CC8.1', 'decision-trace-hash-chain', 'integrity.chain.verified', 'success', 86400000000),
    ('CC8.1', 'public-evidence-verification', 'integrity.checkpoint.signed', NULL, 86400000000),
    ('CC8.1', 'public-evidence-verification', 'integrity.bundle.verified', NULL, 86400000000)
),
hits AS (
    SELECT s.req, s.control, (@now - e.occurred_at - 1) / s.cadence AS bucket, COUNT(*) AS n
    FROM selectors s
    JOIN audit_events e INDEXED BY audit_events_type_time
      ON e.event_type = s.event_type
     AND e.occurred_at >= @now - 2592000000000 AND e.occurred_at < @now
     AND (s.outcome IS NULL OR e.outcome = s.outcome)
    GROUP BY s.req, s.control, bucket
),
per_control AS (
    SELECT c.req, c.control,
           (2592000000000 + c.cadence - 1) / c.cadence AS total,
           COUNT(h.bucket) AS covered,
           COALESCE(SUM(h.n), 0) AS events
    FROM controls c LEFT JOIN hits h USING (req, control)
    GROUP BY c.req, c.control, c.cadence
),
judged AS (
    SELECT req, covered, total, events,
           CASE WHEN events = 0 THEN 'Red' WHEN covered = total THEN 'Green' ELSE 'Amber' END AS state
    FROM per_control
)
SELECT req,
       CASE WHEN MIN(state = 'Green') THEN 'Green' WHEN MIN(state = 'Red') THEN 'Red' ELSE 'Amber' END,
       SUM(covered) || '/' || SUM(total),
       SUM(events)
FROM judged GROUP BY req ORDER BY req;
