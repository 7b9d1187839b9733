CREATE OR REPLACE FUNCTION sync.bulk_write(p_table text, p_columns text[], p_kind text, p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[], p_versions bigint[] DEFAULT NULL::bigint[], p_deletes boolean[] DEFAULT NULL::boolean[], p_uid uuid DEFAULT NULL::uuid, OUT o_written integer, OUT o_ords integer[], OUT o_results jsonb[])
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
begin
  if p_table = 'branches' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_branches(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'profiles' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_profiles(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'hvcs' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_hvcs(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'brokers' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_brokers(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'customers' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_customers(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'key_persons' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_key_persons(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'customer_hvc_links' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_customer_hvc_links(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'pipelines' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_pipelines(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'pipeline_referrals' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_pipeline_referrals(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'activities' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_activities(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'cadences' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_cadences(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  if p_table = 'cadence_participants' then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.bulk_write_cadence_participants(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;
  raise exception 'sync.bulk_write: % is not a syncable table', p_table;
end
$function$
