/**
 * `report --people`: the derived numbers, the three output formats, and a statement whose
 * grouping comes only from the closed list of dimensions.
 */
import { formatPeopleReport, peopleReportSql, peopleRowOf, PEOPLE_REPORT_DIMENSIONS, type PeopleReportDimension } from '../../../src/people/people-report';

const rows = [
  peopleRowOf({ day: '2024-05-01', grp: 'web', people: '40', new_people: '30', sessions: '100', cross_device_people: '10' }),
  peopleRowOf({ day: '2024-05-01', grp: 'a,"b"', people: 0, new_people: 0, sessions: 0, cross_device_people: 0 }),
];

describe('report --people', () => {
  it('derives returning people, sessions per person and the cross-device share', () => {
    expect(rows[0]).toEqual({
      day: '2024-05-01',
      group: 'web',
      people: 40,
      newPeople: 30,
      returningPeople: 10,
      sessions: 100,
      sessionsPerPerson: 2.5,
      crossDevicePeople: 10,
      crossDeviceShare: 0.25,
    });
    expect(rows[1]).toMatchObject({ sessionsPerPerson: 0, crossDeviceShare: 0 });
  });

  it('renders a table, JSON and CSV (quoted where needed)', () => {
    expect(formatPeopleReport(rows.slice(0, 1), 'table', 'channel')).toBe(
      'day         channel  people  new  returning  sessions  sessions/person  cross-device\n' +
        '----------  -------  ------  ---  ---------  --------  ---------------  ------------\n' +
        '2024-05-01  web          40   30         10       100             2.50         25.0%\n',
    );
    expect(JSON.parse(formatPeopleReport(rows.slice(0, 1), 'json'))).toEqual([
      { day: '2024-05-01', people: 40, new_people: 30, returning_people: 10, sessions: 100, sessions_per_person: 2.5, cross_device_people: 10, cross_device_share: 0.25 },
    ]);
    const csv = formatPeopleReport(rows, 'csv', 'first_source').split('\n');
    expect(csv[0]).toBe('day,first_source,people,new_people,returning_people,sessions,sessions_per_person,cross_device_people,cross_device_share');
    expect(csv[2]).toBe('2024-05-01,"a,""b""",0,0,0,0,0,0,0');
    expect(formatPeopleReport([], 'json')).toBe('[]\n');
  });

  it('groups by session columns or person columns, and by nothing else', () => {
    expect(peopleReportSql('db', 'channel')).toContain('toString(s.channel) AS grp');
    expect(peopleReportSql('db', 'first_campaign')).toContain('p.first_campaign AS grp');
    expect(peopleReportSql('db')).toContain("'' AS grp");
    expect(PEOPLE_REPORT_DIMENSIONS).toEqual(expect.arrayContaining(['channel', 'entry_page', 'first_source', 'first_medium', 'first_campaign']));
    expect(() => peopleReportSql('db', 'channel; DROP TABLE sessions' as PeopleReportDimension)).toThrow(/unknown dimension/);
  });
});
