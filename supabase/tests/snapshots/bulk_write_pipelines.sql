CREATE OR REPLACE FUNCTION sync.bulk_write_pipelines(p_columns text[], p_kind text, p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[], p_versions bigint[], p_deletes boolean[], p_uid uuid, OUT o_written integer, OUT o_ords integer[], OUT o_results jsonb[])
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
begin
    if p_columns is distinct from '{customer_id,title,stage,potential_value,approved_value,currency,approval_status,approved_by,approved_at,expected_close_date,notes,assigned_rm_id,branch_id,submitted_by}'::text[] then
      raise exception using message = 'sync.bulk_write: the columns of public.pipelines are not those it was registered with; run sync.register_table again';
    end if;
    if p_kind = 'insert' then
      with w as (
        insert into public.pipelines as t (id, customer_id, title, stage, potential_value, approved_value, currency, approval_status, approved_by, approved_at, expected_close_date, notes, assigned_rm_id, branch_id, submitted_by)
        select o.id, case when o.data ? 'customer_id' then r.customer_id else null end, case when o.data ? 'title' then r.title else null end, case when o.data ? 'stage' then r.stage else 'prospect'::text end, case when o.data ? 'potential_value' then r.potential_value else null end, case when o.data ? 'approved_value' then r.approved_value else null end, case when o.data ? 'currency' then r.currency else 'IDR'::text end, case when o.data ? 'approval_status' then r.approval_status else 'draft'::text end, case when o.data ? 'approved_by' then r.approved_by else null end, case when o.data ? 'approved_at' then r.approved_at else null end, case when o.data ? 'expected_close_date' then r.expected_close_date else null end, case when o.data ? 'notes' then r.notes else null end, case when o.data ? 'assigned_rm_id' then r.assigned_rm_id else auth.uid() end, case when o.data ? 'branch_id' then r.branch_id else sync.current_branch_id() end, case when o.data ? 'submitted_by' then r.submitted_by else null end
          from unnest(p_ids, p_datas) o (id, data)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.pipelines, o.data) r
        returning t.id, t.customer_id, t.title, t.stage, t.potential_value, t.approved_value, t.currency, t.approval_status, t.approved_by, t.approved_at, t.expected_close_date, t.notes, t.assigned_rm_id, t.branch_id, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at, t.submitted_by)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    else
      with w as (
        update public.pipelines as t set deleted_at = case when o.is_delete then pg_catalog.now() else t.deleted_at end,
               version = coalesce(-o.base_version, t.version), customer_id = case when o.data ? 'customer_id' then r.customer_id else t.customer_id end, title = case when o.data ? 'title' then r.title else t.title end, stage = case when o.data ? 'stage' then r.stage else t.stage end, potential_value = case when o.data ? 'potential_value' then r.potential_value else t.potential_value end, approved_value = case when o.data ? 'approved_value' then r.approved_value else t.approved_value end, currency = case when o.data ? 'currency' then r.currency else t.currency end, approval_status = case when o.data ? 'approval_status' then r.approval_status else t.approval_status end, approved_by = case when o.data ? 'approved_by' then r.approved_by else t.approved_by end, approved_at = case when o.data ? 'approved_at' then r.approved_at else t.approved_at end, expected_close_date = case when o.data ? 'expected_close_date' then r.expected_close_date else t.expected_close_date end, notes = case when o.data ? 'notes' then r.notes else t.notes end, assigned_rm_id = case when o.data ? 'assigned_rm_id' then r.assigned_rm_id else t.assigned_rm_id end, branch_id = case when o.data ? 'branch_id' then r.branch_id else t.branch_id end, submitted_by = case when o.data ? 'submitted_by' then r.submitted_by else t.submitted_by end
          from unnest(p_ids, p_versions, p_datas, p_deletes) o (id, base_version, data, is_delete)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.pipelines, o.data) r
         where t.id = o.id and t.deleted_at is null
           and case when o.base_version is null then t.updated_by = p_uid
                    else t.version = o.base_version end
        returning t.id, t.customer_id, t.title, t.stage, t.potential_value, t.approved_value, t.currency, t.approval_status, t.approved_by, t.approved_at, t.expected_close_date, t.notes, t.assigned_rm_id, t.branch_id, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at, t.submitted_by)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    end if;
end
$function$
