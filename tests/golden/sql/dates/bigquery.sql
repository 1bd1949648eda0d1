WITH `vo` AS (
  SELECT
    *
  FROM `orders`
  WHERE
    `created_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
    OR `created_at` IS NULL
), `ve` AS (
  SELECT
    *
  FROM `events`
  WHERE
    `at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME) OR `at` IS NULL
), `ids` AS (
  SELECT
    `id`
  FROM (
    SELECT
      `id` AS `id`
    FROM `customers`
    UNION DISTINCT
    SELECT
      `customer_id`
    FROM `vo`
    UNION DISTINCT
    SELECT
      `customer_id`
    FROM `ve`
  ) AS `u`
  WHERE
    NOT `id` IS NULL
)
SELECT
  `ids`.`id` AS `customer_id`
FROM `ids`
LEFT JOIN `customers` AS `c`
  ON `c`.`id` = `ids`.`id`
WHERE
  (
    `c`.`registered_at` IS NULL
    OR `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
  )
  AND COALESCE(
    (
      DATE_ADD(`c`.`birthday`, INTERVAL 1 YEAR) <= CAST('2026-06-30' AS DATE)
      AND (
        `c`.`registered_at` > CAST('2025-12-30 23:59:59.999999' AS DATETIME)
        AND `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
      )
      AND EXTRACT(MONTH FROM `c`.`birthday`) = 6
      AND DATE_DIFF(CAST(`c`.`registered_at` AS DATE), CAST(`c`.`birthday` AS DATE), DAY) > 3650
    ),
    FALSE
  )
