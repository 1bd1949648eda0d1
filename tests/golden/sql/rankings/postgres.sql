WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL
    OR "o"."created_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "o_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    COUNT(*) AS "a0",
    MAX("o"."created_at") AS "a1",
    SUM("o"."total") AS "a2"
  FROM "vo" AS "o"
  GROUP BY
    "o"."customer_id"
), "others" AS (
  SELECT
    "customer_id" AS "customer_id"
  FROM (
    SELECT
      "customer_id"
    FROM "vo"
    UNION
    SELECT
      "customer_id"
    FROM "ve"
  ) AS "u"
), "pop0" AS (
  SELECT
    "ranked"."customer_id" AS "customer_id",
    CASE
      WHEN NOT "ranked"."v0" IS NULL
      THEN 1 + DIV(
        (
          5 * (
            RANK() OVER (ORDER BY "ranked"."v0") - 1
          )
        ),
        COUNT("ranked"."v0") OVER ()
      )
    END AS "t0"
  FROM (
    SELECT
      "o_agg"."customer_id" AS "customer_id",
      CAST("o_agg"."a1" AS DATE) AS "v0"
    FROM "o_agg"
    WHERE
      NOT "o_agg"."customer_id" IS NULL
      AND NOT "o_agg"."customer_id" IN (
        SELECT
          "c"."id"
        FROM "customers" AS "c"
        WHERE
          NOT (
            "c"."registered_at" IS NULL
            OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
          )
          AND NOT "c"."id" IS NULL
      )
      AND COALESCE("o_agg"."a0", 0) > 0
  ) AS "ranked"
), "pop1" AS (
  SELECT
    "ranked"."customer_id" AS "customer_id",
    NTILE(4) OVER (ORDER BY "ranked"."v0", "ranked"."customer_id" COLLATE "C") AS "t0"
  FROM (
    SELECT
      COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id") AS "customer_id",
      COALESCE("o_agg"."a2", CAST(0 AS DECIMAL(38, 6))) AS "v0"
    FROM "customers" AS "c"
    FULL JOIN "o_agg"
      ON "o_agg"."customer_id" = "c"."id"
    FULL JOIN "others"
      ON "others"."customer_id" = COALESCE("c"."id", "o_agg"."customer_id")
    WHERE
      NOT COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id") IS NULL
      AND (
        "c"."registered_at" IS NULL
        OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
      )
      AND "c"."age" >= 18
  ) AS "ranked"
), "pop2" AS (
  SELECT
    "ranked"."customer_id" AS "customer_id",
    CASE
      WHEN NOT "ranked"."v0" IS NULL
      THEN NTILE(3) OVER (
        PARTITION BY (
          "ranked"."v0" IS NULL
        )
        ORDER BY "ranked"."v0" DESC NULLS LAST, "ranked"."customer_id" COLLATE "C"
      )
    END AS "t0"
  FROM (
    SELECT
      COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id") AS "customer_id",
      "c"."points" AS "v0"
    FROM "customers" AS "c"
    FULL JOIN "o_agg"
      ON "o_agg"."customer_id" = "c"."id"
    FULL JOIN "others"
      ON "others"."customer_id" = COALESCE("c"."id", "o_agg"."customer_id")
    WHERE
      NOT COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id") IS NULL
      AND (
        "c"."registered_at" IS NULL
        OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
      )
      AND TRUE
  ) AS "ranked"
)
SELECT
  COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id") AS "customer_id"
FROM "customers" AS "c"
FULL JOIN "o_agg"
  ON "o_agg"."customer_id" = "c"."id"
FULL JOIN "others"
  ON "others"."customer_id" = COALESCE("c"."id", "o_agg"."customer_id")
LEFT JOIN "pop0"
  ON "pop0"."customer_id" = COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id")
LEFT JOIN "pop1"
  ON "pop1"."customer_id" = COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id")
LEFT JOIN "pop2"
  ON "pop2"."customer_id" = COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id")
WHERE
  NOT COALESCE("c"."id", "o_agg"."customer_id", "others"."customer_id") IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
  )
  AND (
    "pop0"."t0" >= 4 AND "pop1"."t0" = 1 AND "pop2"."t0" <= 2
  )
