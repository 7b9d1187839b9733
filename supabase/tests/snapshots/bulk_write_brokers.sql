CREATE OR REPLACE FUNCTION sync.bulk_write_brokers(p_columns text[], p_kind text, p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[], p_versions bigint[], p_deletes boolean[], p_uid uuid, OUT o_written integer, OUT o_ords integer[], OUT o_results jsonb[])
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
begin
    if p_columns is distinct from '{name,license_no,phone,email}'::text[] then
      raise exception using message = 'sync.bulk_write: the columns of public.brokers are not those it was registered with; run sync.register_table again';
    end if;
    if p_kind = 'insert' then
      with w as (
        insert into public.brokers as t (id, name, license_no, phone, email)
        select o.id, case when o.data ? 'name' then r.name else null end, case when o.data ? 'license_no' then r.license_no else null end, case when o.data ? 'phone' then r.phone else null end, case when o.data ? 'email' then r.email else null end
          from unnest(p_ids, p_datas) o (id, data)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.brokers, o.data) r
        returning t.id, t.name, t.license_no, t.phone, t.email, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    else
      with w as (
        update public.brokers as t set deleted_at = case when o.is_delete then pg_catalog.now() else t.deleted_at end,
               version = coalesce(-o.base_version, t.version), name = case when o.data ? 'name' then r.name else t.name end, license_no = case when o.data ? 'license_no' then r.license_no else t.license_no end, phone = case when o.data ? 'phone' then r.phone else t.phone end, email = case when o.data ? 'email' then r.email else t.email end
          from unnest(p_ids, p_versions, p_datas, p_deletes) o (id, base_version, data, is_delete)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.brokers, o.data) r
         where t.id = o.id and t.deleted_at is null
           and case when o.base_version is null then t.updated_by = p_uid
                    else t.version = o.base_version end
        returning t.id, t.name, t.license_no, t.phone, t.email, t.version, t.created_at, t.updated_at, t.created_by, t.updated_by, t.deleted_at)
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;
    end if;
end
$function$
