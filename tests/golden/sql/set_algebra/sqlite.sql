WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL OR "o"."created_at" <= '2026-06-30 23:59:59.999999'
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= '2026-06-30 23:59:59.999999'
)
SELECT
  "c"."id" AS "customer_id"
FROM "customers" AS "c"
WHERE
  NOT "c"."id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    COALESCE(
      (
        COALESCE((
          COALESCE("c"."age" >= 18, 0)
        ), 0)
        OR COALESCE((
          COALESCE("c"."email_subscribed", 0)
        ), 0)
      ),
      0
    )
    AND NOT COALESCE((
      COALESCE("c"."vip", 0)
    ), 0)
  )
