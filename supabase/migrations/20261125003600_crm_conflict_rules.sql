-- The CRM's conflict rules, as data: two relationship managers editing the same customer offline
-- both keep their edits where they touched different fields; money and stage of a pipeline are
-- never decided by a machine. A DBA changes any of this with one update, no deploy.

update sync.tables set conflict_strategy = 'field_merge', merge_fallback = 'client'
 where table_name in ('customers', 'key_persons');
update sync.tables set conflict_strategy = 'field_merge', merge_fallback = 'client'
 where table_name = 'pipelines';
update sync.tables set conflict_strategy = 'client_wins'
 where table_name in ('activities', 'customer_hvc_links', 'pipeline_referrals');
update sync.tables set conflict_strategy = 'server_wins'
 where table_name in ('hvcs', 'brokers', 'branches', 'profiles');

insert into sync.column_conflict_rules (table_name, column_name, merge_fallback, note) values
  ('pipelines', 'potential_value', 'manual', 'money is reviewed by a person'),
  ('pipelines', 'approved_value', 'manual', 'money is reviewed by a person'),
  ('pipelines', 'currency', 'manual', 'money is reviewed by a person'),
  ('pipelines', 'stage', 'manual', 'the stage drives the forecast');
